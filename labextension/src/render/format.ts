// The one formatting rule for values shown to people (params, metrics, summaries, table cells), used by
// every view of this module. jupyter_mv/jsondata.py `value_text` mirrors it for the text renderer; the
// shared table tests/fixtures/format_cases.json is checked against both (tests/test_format_rule.py).
//
//   missing (undefined) -> ""            null -> "None"          true/false -> "True"/"False"
//   NaN / ±Infinity (numbers, or the strings "NaN"/"Infinity"/"-Infinity" RFC 8259 JSON carries) -> NaN ∞ -∞
//   integer-valued numbers below 1e16 -> their digits (1.0 and 1 both "1": JSON does not tell them apart)
//   1e-4 <= |x| < 1e6 -> shortest decimal of x rounded to 6 significant digits (0.0001, 0.333333)
//   other numbers -> 6 significant digits in exponent form, trailing zeros dropped (1e-5, 1.5e+20)
//   strings -> themselves; lists/objects -> Python-literal style ([1, 'a'], {'k': None}), items by this rule

const NONFINITE_TEXT: Record<string, string> = { NaN: 'NaN', Infinity: '∞', '-Infinity': '-∞' };

export function formatNumber(v: number): string {
  if (!isFinite(v)) {
    return Number.isNaN(v) ? 'NaN' : v > 0 ? '∞' : '-∞';
  }
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e16) {
    return String(v === 0 ? 0 : v); // -0 -> "0"
  }
  if (a >= 1e-4 && a < 1e6) {
    return String(Number(v.toPrecision(6)));
  }
  const [mant, exp] = v.toExponential(5).split('e');
  const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
  const e = Number(exp);
  return `${m}e${e < 0 ? '-' : '+'}${Math.abs(e)}`;
}

function quote(s: string): string {
  // Python's repr of a str: single quotes unless the text has one and no double quote
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  return q + s.replace(/\\/g, '\\\\').replace(new RegExp(q, 'g'), `\\${q}`).replace(/\n/g, '\\n') + q;
}

function inner(v: unknown): string {
  if (typeof v === 'string') {
    return v in NONFINITE_TEXT ? NONFINITE_TEXT[v] : quote(v);
  }
  return formatValue(v);
}

/** A value for people, by the one rule above. */
export function formatValue(v: unknown): string {
  if (v === undefined) {
    return '';
  }
  if (v === null) {
    return 'None';
  }
  if (typeof v === 'boolean') {
    return v ? 'True' : 'False';
  }
  if (typeof v === 'number') {
    return formatNumber(v);
  }
  if (typeof v === 'string') {
    return Object.prototype.hasOwnProperty.call(NONFINITE_TEXT, v) ? NONFINITE_TEXT[v] : v;
  }
  if (Array.isArray(v)) {
    return '[' + v.map(inner).join(', ') + ']';
  }
  if (typeof v === 'object') {
    return '{' + Object.entries(v as Record<string, unknown>).map(([k, x]) => `${quote(k)}: ${inner(x)}`).join(', ') + '}';
  }
  return String(v);
}

/** A signed change: "+0.25", "-3", "" for a missing or NaN delta (neither up nor down). */
export function formatDelta(d: unknown): string {
  const n = typeof d === 'string' && d in NONFINITE_TEXT ? Number(d) : d;
  if (typeof n !== 'number' || Number.isNaN(n)) {
    return '';
  }
  return (n >= 0 ? '+' : '') + formatNumber(n);
}

/** "k=v, k2=v2, +3" with at most `max` pairs. */
export function keyValues(d: Record<string, unknown>, max = 4): string {
  const entries = Object.entries(d || {});
  const shown = entries.slice(0, max).map(([k, v]) => `${k}=${formatValue(v)}`);
  if (entries.length > max) {
    shown.push(`+${entries.length - max}`);
  }
  return shown.join(', ');
}

export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  for (const u of units) {
    if (Math.abs(v) < 1000 || u === 'TB') {
      return u === 'B' ? `${Math.round(v)} B` : `${v.toFixed(1)} ${u}`;
    }
    v /= 1000;
  }
  return `${n} B`;
}

/** YYYY-MM-DD HH:MM in local time; the text itself when it is not a date. */
export function shortDate(iso: string): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) {
    return iso;
  }
  const pad = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** As short as a list needs: the time today, month-day and time this year, else the date. */
export function compactDate(iso: string, now = new Date()): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) {
    return iso;
  }
  const full = shortDate(iso);
  if (d.toDateString() === now.toDateString()) {
    return full.slice(11);
  }
  return d.getFullYear() === now.getFullYear() ? full.slice(5) : full.slice(0, 10);
}

export function relTime(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (isNaN(t)) {
    return iso || '';
  }
  const sec = Math.round((now - t) / 1000);
  if (sec < 45) {
    return 'just now';
  }
  const steps: [number, string][] = [[60, 'minute'], [3600, 'hour'], [86400, 'day'], [2592000, 'month'], [31536000, 'year']];
  let unit = 'minute';
  let size = 60;
  for (const [sz, name] of steps) {
    if (sec >= sz * 0.75) {
      unit = name;
      size = sz;
    }
  }
  const n = Math.max(1, Math.round(sec / size));
  return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
}

export function exactTime(iso: string): string {
  const t = Date.parse(iso);
  return isNaN(t) ? iso || '' : `${new Date(t).toLocaleString()}  (${iso})`;
}
