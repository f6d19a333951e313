// Validate TeX formulas the way MathJax 3 would parse them on a web page.
//
// Reads a JSON array of [tex, display] pairs on stdin and writes a JSON array of
// [index, message] pairs on stdout, one for each formula MathJax cannot parse.
// One process handles a whole batch: starting MathJax costs far more than a formula.
//
// The packages are those MathJax 3's default TeX component can reach: the ones it
// loads, plus every package its `autoload` extension would load on first use. Two
// are left out on purpose: `noundefined` (it draws unknown macros in red instead
// of failing) and `noerrors` (it shows the source instead of failing); `require`
// and `autoload` are not needed because everything they could load is loaded.
// `bussproofs` is left out too: it needs an output jax to measure boxes, and proof
// trees are nothing derive writes. `formatError` rethrows, so every TeX error
// surfaces instead of becoming <merror>.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { mathjax } = require('mathjax-full/js/mathjax.js');
const { TeX } = require('mathjax-full/js/input/tex.js');
const { RegisterHTMLHandler } = require('mathjax-full/js/handlers/html.js');
const { liteAdaptor } = require('mathjax-full/js/adaptors/liteAdaptor.js');
const { STATE } = require('mathjax-full/js/core/MathItem.js');
require('mathjax-full/js/input/tex/AllPackages.js'); // registers every package

export const PACKAGES = [
  // loaded by the default component
  'base', 'ams', 'newcommand', 'configmacros',
  // reachable through its autoload extension
  'action', 'amscd', 'bbox', 'boldsymbol', 'braket', 'cancel',
  'color', 'enclose', 'extpfeil', 'html', 'mhchem', 'unicode', 'verb',
];

function makeConverter() {
  RegisterHTMLHandler(liteAdaptor());
  const tex = new TeX({
    packages: PACKAGES,
    formatError: (_jax, err) => { throw err; },
  });
  const doc = mathjax.document('', { InputJax: tex });
  return (source, display) => doc.convert(source, { display, end: STATE.CONVERT });
}

function check(formulas) {
  const convert = makeConverter();
  const errors = [];
  formulas.forEach(([source, display], index) => {
    try {
      convert(source, Boolean(display));
    } catch (err) {
      errors.push([index, String(err && err.message ? err.message : err)]);
    }
  });
  return errors;
}

const formulas = JSON.parse(readFileSync(0, 'utf8'));
if (!Array.isArray(formulas)) {
  throw new TypeError('expected a JSON array of [tex, display] pairs on stdin');
}
process.stdout.write(JSON.stringify(check(formulas)));
