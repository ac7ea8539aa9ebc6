"""Browser tests (marker `browser`): JupyterLab in headless Chromium. A package so that the
package-scoped lab server and browser end before the other tests run."""
