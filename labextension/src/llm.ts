// LLM work (prompts, eval tables) is rendered by the rendering layer (render/details.ts: renderLLM,
// plainSummary; render/analysis.ts: the prompt/eval analyses). These names stay for existing imports.
export { plainSummary, renderLLM, renderAnalysis } from './render/index';
