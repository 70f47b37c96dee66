// Runs the chemiscope viewer's own dataset validator on a file.
//   node chemiscope_validate.mjs <chemiscope>/static/chemiscope-widget.mjs file.json[.gz]
// The chemiscope Python package ships the viewer as one bundled module that
// needs a browser to import; its validator (`validateDataset` and the
// `check…` helpers it calls) is plain code. This script cuts those functions
// out of the bundle by brace matching, following the calls from
// `validateDataset` to every top-level function of the bundle it uses, and
// runs them on the file. Prints `valid: …` or exits 1 with the viewer's message.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

const [bundlePath, file] = process.argv.slice(2);
const bundle = fs.readFileSync(bundlePath, 'utf8');

/** Index just past the brace that closes the one at `open`, skipping strings, templates and comments. */
function matchBrace(s, open) {
  let depth = 0;
  const templates = []; // brace depth at which each open template's ${ started
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === "'") {
      for (i++; s[i] !== c; i++) if (s[i] === '\\') i++;
    } else if (c === '`') {
      // template text up to the closing backtick or a ${
      for (i++; s[i] !== '`'; i++) {
        if (s[i] === '\\') i++;
        else if (s[i] === '$' && s[i + 1] === '{') {
          templates.push(depth);
          depth++;
          i++;
          break;
        }
      }
    } else if (c === '/' && s[i + 1] === '*') {
      i = s.indexOf('*/', i + 2) + 1;
    } else if (c === '{') {
      depth++;
    } else if (c === '}') {
      depth--;
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        // back in template text
        templates.pop();
        for (i++; s[i] !== '`'; i++) {
          if (s[i] === '\\') i++;
          else if (s[i] === '$' && s[i + 1] === '{') {
            templates.push(depth);
            depth++;
            i++;
            break;
          }
        }
        continue;
      }
      if (depth === 0) return i + 1;
    }
  }
  throw new Error('unbalanced braces');
}

function extract(name) {
  const m = new RegExp(`(?:^|[;}\\s])function ${name}\\(`).exec(bundle);
  if (!m) return undefined;
  const start = bundle.indexOf(`function ${name}(`, m.index);
  return bundle.slice(start, matchBrace(bundle, bundle.indexOf('{', start)));
}

const sources = new Map();
const queue = ['validateDataset'];
while (queue.length > 0) {
  const name = queue.pop();
  if (sources.has(name)) continue;
  const src = extract(name);
  if (src === undefined) continue;
  sources.set(name, src);
  for (const m of src.matchAll(/(?<![.\w$])([A-Za-z_$][\w$]*)\(/g)) {
    if (!sources.has(m[1]) && m[1] !== name) queue.push(m[1]);
  }
}
if (!sources.has('validateDataset')) throw new Error(`no validateDataset in ${bundlePath}`);
// the bundle's `assert` import
const prelude = 'const assert_default = () => (c, m) => { if (!c) throw new Error(`assertion failed: ${m}`); };\n';
const validateDataset = new Function(`${prelude}${[...sources.values()].join('\n')}\nreturn validateDataset;`)();

const raw = fs.readFileSync(file);
const data = JSON.parse((file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8'));
validateDataset(data);
console.log(`valid: ${file} (${data.structures.length} structures, ${Object.keys(data.properties).length} properties; viewer functions used: ${[...sources.keys()].join(', ')})`);
