#!/usr/bin/env bash
# CI: install acdc the way a user without a Rust toolchain does, from the two
# tarballs `npm publish` would upload on linux-x64-gnu: the root package (JS,
# types, napi's loader; no binary) and acdc-ml-linux-x64-gnu (the binary).
#
# Needs a built checkout (`npm ci` has run: native/acdc.linux-x64-gnu.node and
# dist/ exist, and commander, acdc's one runtime dependency, is in the npm
# cache). Packs with --ignore-scripts, so it tests exactly what was built.
#
# Checks, in a scratch project outside the repository with no cargo on PATH:
#   - both tarballs install with `npm install --offline`;
#   - require('acdc-ml') and import('acdc-ml') compute a SOAP power spectrum, and
#     share one set of classes; the acdc CLI runs;
#   - a consumer .ts file (CommonJS and ES module flavours) passes tsc --noEmit
#     against the published types, and a deliberately wrong call fails it;
#   - without the platform package, loading acdc throws an error naming the
#     platform, the package it looked for and how to build from source;
#   - publint finds nothing to report in either tarball;
#   - the install is light: at most 10 packages and 15 MB in node_modules
#     (binary included), require('acdc-ml') loads no other package, and the
#     commands whose optional peer packages are absent (serve, worker,
#     featurize --queue, map --svg) print one line with the npm install
#     command and exit 2;
# and prints the tarball sizes.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PLATFORM=linux-x64-gnu
BINARY=native/acdc.$PLATFORM.node
TSC=$REPO/node_modules/.bin/tsc

step() { printf '\n== pack-test: %s\n' "$*"; }
fail() { printf 'pack-test: FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(node -p 'process.platform + "-" + process.arch')" = linux-x64 ] || { echo "pack-test: only runs on linux-x64 (the platform package it tests); skipped"; exit 0; }
[ -f "$BINARY" ] || fail "$BINARY is missing: run \`npm ci\` (or \`npm run build\`) first"
[ -f dist/index.js ] && [ -f dist/index.mjs ] && [ -f native/index.js ] || fail "dist/ or native/index.js is missing: run \`npm ci\` (or \`npm run build\`) first"
[ -x "$TSC" ] || fail "$TSC is missing: run \`npm ci\` first"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/acdc-pack-test.XXXXXX")
cleanup() { rm -rf "$WORK"; rm -f "npm/$PLATFORM/acdc.$PLATFORM.node"; }
trap cleanup EXIT

step "platform package npm/$PLATFORM"
cp "$BINARY" "npm/$PLATFORM/"
node scripts/ci/check-platform-packages.mjs "$PLATFORM"

step "npm pack (root and npm/$PLATFORM)"
mkdir -p "$WORK/tarballs"
npm pack --ignore-scripts --json --pack-destination "$WORK/tarballs" > "$WORK/root-pack.json"
(cd "npm/$PLATFORM" && npm pack --ignore-scripts --json --pack-destination "$WORK/tarballs") > "$WORK/platform-pack.json"
ROOT_TGZ=$WORK/tarballs/$(node -p "require('$WORK/root-pack.json')[0].filename")
PLATFORM_TGZ=$WORK/tarballs/$(node -p "require('$WORK/platform-pack.json')[0].filename")
node - "$WORK/root-pack.json" "$WORK/platform-pack.json" <<'EOF'
const [rootPack] = require(process.argv[2]);
const [platformPack] = require(process.argv[3]);
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
for (const p of [rootPack, platformPack]) {
  console.log(`${p.filename}: ${mb(p.size)} packed, ${mb(p.unpackedSize)} unpacked, ${p.entryCount} files`);
}
const rootFiles = rootPack.files.map((f) => f.path);
const binaries = rootFiles.filter((f) => f.endsWith('.node'));
if (binaries.length > 0) throw new Error(`the root tarball must not contain a .node binary: ${binaries.join(', ')}`);
for (const f of ['package.json', 'index.d.ts', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'native/index.js', 'native/index.d.ts', 'dist/cli/main.js']) {
  if (!rootFiles.includes(f)) throw new Error(`the root tarball lacks ${f}`);
}
const platformFiles = platformPack.files.map((f) => f.path).sort();
if (!platformFiles.includes(`acdc.linux-x64-gnu.node`)) throw new Error(`the platform tarball lacks its binary: ${platformFiles.join(', ')}`);
EOF

step "publint"
(cd "$WORK" && "$REPO/node_modules/.bin/publint" run "$ROOT_TGZ" --strict)
# (the platform package is napi create-npm-dirs' output as is: no "type" field, which publint suggests)
(cd "$WORK" && "$REPO/node_modules/.bin/publint" run "$PLATFORM_TGZ" --strict --level warning)

step "PATH without cargo"
NOCARGO_PATH=
IFS=: read -r -a path_dirs <<< "$PATH"
for d in "${path_dirs[@]}"; do
  [ -n "$d" ] || continue
  case "$d" in *"/.cargo/bin"*|*"/.rustup/"*) continue ;; esac
  [ -x "$d/cargo" ] && continue
  NOCARGO_PATH=${NOCARGO_PATH:+$NOCARGO_PATH:}$d
done
if PATH=$NOCARGO_PATH command -v cargo >/dev/null 2>&1; then fail "cargo is still on PATH: $(PATH=$NOCARGO_PATH command -v cargo)"; fi
PATH=$NOCARGO_PATH command -v node >/dev/null || fail "node is not on the cargo-free PATH"
PATH=$NOCARGO_PATH command -v npm >/dev/null || fail "npm is not on the cargo-free PATH"
echo "cargo: not found on PATH=$NOCARGO_PATH"
run() { (cd "$WORK/consumer" && env PATH="$NOCARGO_PATH" "$@"); }

step "npm install the two tarballs into a scratch project (offline)"
mkdir -p "$WORK/consumer"
cat > "$WORK/consumer/package.json" <<'EOF'
{ "name": "acdc-consumer", "version": "0.0.0", "private": true }
EOF
npm_flags=(--no-audit --no-fund --no-update-notifier --loglevel=error)
if ! run npm install --offline "${npm_flags[@]}" "$ROOT_TGZ" "$PLATFORM_TGZ"; then
  echo "pack-test: offline install failed (is commander in the npm cache?); retrying with --prefer-offline"
  run npm install --prefer-offline "${npm_flags[@]}" "$ROOT_TGZ" "$PLATFORM_TGZ"
fi

run npm ls --all

step "a light install: at most 10 packages and 15 MB; no optional extra installed"
# every package npm put in node_modules (npm's hidden lock file lists them)
count=$(cd "$WORK/consumer" && node -e "console.log(Object.keys(require('./node_modules/.package-lock.json').packages).length)")
bytes=$(du -sb "$WORK/consumer/node_modules" | cut -f1)
echo "$count packages, $bytes bytes in node_modules:"
(cd "$WORK/consumer" && node -e "for (const [k, v] of Object.entries(require('./node_modules/.package-lock.json').packages)) console.log('  ' + k.replace(/^node_modules\//, '') + '@' + v.version)")
[ "$count" -le 10 ] || fail "npm i acdc-ml installs $count packages (at most 10)"
[ "$bytes" -le 15000000 ] || fail "npm i acdc-ml installs $bytes bytes (at most 15 MB)"
for extra in bullmq ioredis fastify prom-client vega vega-lite; do
  [ ! -e "$WORK/consumer/node_modules/$extra" ] || fail "$extra was installed: it must be an optional peer dependency"
done
run node -e "require('acdc-ml'); const other = Object.keys(require.cache).filter((k) => !/[/]node_modules[/]acdc-ml(-[a-z0-9-]+)?[/]/.test(k)); if (other.length) { console.error(other.join('\\n')); process.exit(1); }" \
  || fail "require('acdc-ml') loads other packages"
echo "require('acdc-ml') loads acdc-ml's own files and its platform package only"
printf '1\n\nH 0 0 0\n' > "$WORK/consumer/h.xyz"
check_extra() {  # name, expected packages, acdc arguments...
  local what=$1 pkgs=$2; shift 2
  set +e; run ./node_modules/.bin/acdc "$@" > "$WORK/extra.out" 2> "$WORK/extra.err"; local rc=$?; set -e
  [ "$rc" = 2 ] || { cat "$WORK/extra.err"; fail "acdc $what without $pkgs exited $rc (expected 2)"; }
  [ "$(wc -l < "$WORK/extra.err")" = 1 ] && [ ! -s "$WORK/extra.out" ] || { cat "$WORK/extra.err"; fail "acdc $what: expected one line on stderr"; }
  grep -q "^acdc: $what needs .*: npm install $pkgs" "$WORK/extra.err" || { cat "$WORK/extra.err"; fail "acdc $what: the line does not name npm install $pkgs"; }
  cat "$WORK/extra.err"
}
check_extra serve 'fastify@[^ ]* prom-client@' serve --port 0
check_extra worker 'bullmq@[^ ]* ioredis@' worker --queue redis://127.0.0.1:1/0
check_extra 'featurize --queue' 'bullmq@[^ ]* ioredis@' featurize h.xyz --queue redis://127.0.0.1:1/0 --out-dir shards
check_extra 'map --svg' 'vega@[^ ]* vega-lite@' map h.xyz --out map.json --svg map.svg

cat > "$WORK/consumer/soap.cjs" <<'EOF'
// CommonJS consumer
const assert = require('node:assert');
const acdc = require('acdc-ml');
const { System, SoapPowerSpectrum, readXyzSync } = acdc;
assert.ok(require.resolve('acdc-ml').endsWith('dist/index.js'), require.resolve('acdc-ml'));
const [silicon] = readXyzSync(require.resolve('acdc-ml/package.json').replace(/package\.json$/, 'examples/silicon-defect.xyz'));
const water = new System({ types: [8, 1, 1], positions: [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]] });
const soap = new SoapPowerSpectrum({
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 4 } },
});
const tm = soap.computeSync([water, silicon]);
const block = tm.block({ center_type: 8, neighbor_1_type: 1, neighbor_2_type: 1 });
assert.deepStrictEqual(block.shape, [1, 5 * 5 * 5]);
assert.ok(block.values.every(Number.isFinite) && block.values.some((v) => v !== 0));
const si = tm.block({ center_type: 14, neighbor_1_type: 14, neighbor_2_type: 14 });
console.log(`require('acdc-ml'): ${tm.keys.count} blocks; O-H-H ${block.shape}; Si-Si-Si ${si.shape}; first value ${block.values[0]}`);
require('node:fs').writeFileSync('cjs-values.json', JSON.stringify(Array.from(block.values)));
EOF
cat > "$WORK/consumer/soap.mjs" <<'EOF'
// ES module consumer
import assert from 'node:assert';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { System, SoapPowerSpectrum, TensorMap } from 'acdc-ml';
const dynamic = await import('acdc-ml');
const cjs = createRequire(import.meta.url)('acdc-ml');
assert.strictEqual(dynamic.SoapPowerSpectrum, SoapPowerSpectrum);
assert.strictEqual(cjs.SoapPowerSpectrum, SoapPowerSpectrum, 'import and require must share one module');
assert.ok(import.meta.resolve('acdc-ml').endsWith('dist/index.mjs'), import.meta.resolve('acdc-ml'));
const water = new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] });
const soap = new dynamic.SoapPowerSpectrum({
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 4 } },
});
const tm = await soap.compute([water]);
assert.ok(tm instanceof TensorMap);
const block = tm.block({ center_type: 8, neighbor_1_type: 1, neighbor_2_type: 1 });
assert.deepStrictEqual(Array.from(block.values), JSON.parse(readFileSync('cjs-values.json', 'utf8')));
console.log(`import('acdc-ml'): ${tm.keys.count} blocks; O-H-H ${block.shape}; same values as require('acdc-ml')`);
EOF
step "require('acdc-ml') and import('acdc-ml'), no cargo on PATH"
run node soap.cjs
run node soap.mjs
step "the CLI from the installed package"
run ./node_modules/.bin/acdc neighbors node_modules/acdc-ml/examples/silicon-defect.xyz --cutoff 5 > "$WORK/cli.log"
head -n 5 "$WORK/cli.log"
[ -s "$WORK/cli.log" ] || fail "npx acdc neighbors printed nothing"

step "types: a consumer passes tsc --noEmit (the current TypeScript release, no @types/node); a wrong call fails it"
# The public types must stand alone: no Node types (@types/node) in the
# consumer's compilation. Checked with the newest TypeScript from the registry
# and with the repository's own compiler.
TSC_LATEST=
if (cd "$WORK/consumer" && npm install --no-save "${npm_flags[@]}" typescript@latest > "$WORK/ts-latest.log" 2>&1); then
  TSC_LATEST=$WORK/consumer/node_modules/.bin/tsc
  echo "TypeScript from the registry: $("$TSC_LATEST" --version)"
else
  cat "$WORK/ts-latest.log"; fail "could not install typescript@latest into the scratch project"
fi
cat > "$WORK/consumer/tsconfig.json" <<EOF
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2022"], "module": "node16", "moduleResolution": "node16",
    "strict": true, "noEmit": true, "skipLibCheck": false, "types": []
  },
  "files": ["consumer.ts", "consumer.mts"]
}
EOF
cat > "$WORK/consumer/consumer.ts" <<'EOF'
// CommonJS consumer of the public types (resolved through "exports" > "require" > "types").
import { System, SoapPowerSpectrum, TensorMap, TensorBlock, type SoapHypers, type ComputeOptions } from 'acdc-ml';
const hypers: SoapHypers = {
  cutoff: { radius: 5, smoothing: { type: 'ShiftedCosine', width: 0.5 } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', max_radial: 4 } },
};
const options: ComputeOptions = { gradients: ['positions', 'strain'] };
const system = new System({ types: [8, 1, 1], positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] });
const types: Int32Array = system.types;
const positions: Float64Array = system.positions;
const soap = new SoapPowerSpectrum(hypers);
const tm: TensorMap = soap.computeSync([system]);
const pending: Promise<TensorMap> = soap.compute([system], options);
const block: TensorBlock = tm.block(0);
const values: Float64Array = block.values;
const shape: number[] = block.shape;
const gradient: TensorBlock | undefined = block.gradient('positions');
export { types, positions, pending, values, shape, gradient };
EOF
cat > "$WORK/consumer/consumer.mts" <<'EOF'
// ES module consumer of the public types (resolved through "exports" > "import" > "types").
import { System, SoapPowerSpectrum, type TensorMap } from 'acdc-ml';
const soap = new SoapPowerSpectrum({
  cutoff: { radius: 5, smoothing: { type: 'Step' } },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 2, radial: { type: 'Gto', max_radial: 2 }, spline_accuracy: null },
});
const tm: TensorMap = await soap.compute([new System({ types: [1], positions: [[0, 0, 0]] })]);
export const count: number = tm.keys.count;
EOF
for compiler in "$TSC_LATEST" "$TSC"; do
  run "$compiler" --noEmit -p tsconfig.json
  echo "consumer.ts, consumer.mts: tsc $("$compiler" --version) --noEmit passes without @types/node"
done
cat > "$WORK/consumer/wrong.ts" <<'EOF'
import { System, SoapPowerSpectrum, type CutoffHypers } from 'acdc-ml';
// smoothing is required
const cutoff: CutoffHypers = { radius: 5 };
// radius must be a number (Å); the radial size is max_radial
const soap = new SoapPowerSpectrum({
  cutoff: { radius: '5' },
  density: { type: 'Gaussian', width: 0.3 },
  basis: { type: 'TensorProduct', max_angular: 4, radial: { type: 'Gto', n_max: 4 } },
});
// gradients only knows 'positions' and 'strain'
soap.computeSync([new System({ types: [1], positions: [0, 0, 0] })], { gradients: ['cell'] });
EOF
sed -e 's/"files": \[[^]]*\]/"files": ["wrong.ts"]/' "$WORK/consumer/tsconfig.json" > "$WORK/consumer/tsconfig.wrong.json"
if run "$TSC_LATEST" --noEmit -p tsconfig.wrong.json > "$WORK/wrong.log" 2>&1; then
  cat "$WORK/wrong.log"; fail "tsc accepted wrong.ts"
fi
cat "$WORK/wrong.log"
for code in "Property 'smoothing' is missing" "Type 'string' is not assignable to type 'number'" "'n_max' does not exist" "'\"cell\"' is not assignable"; do
  grep -q -- "$code" "$WORK/wrong.log" || fail "tsc did not report $code in wrong.ts"
done
echo "wrong.ts: tsc --noEmit fails, as it should"

step "without the platform package: the error names the platform and the fix"
rm -rf "$WORK/consumer/node_modules/acdc-ml-$PLATFORM"
for entry in "require('acdc-ml')" "import('acdc-ml')"; do
  if run node -e "Promise.resolve().then(() => $entry).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); })" > "$WORK/missing.log" 2>&1; then
    fail "$entry loaded without acdc-ml-$PLATFORM"
  fi
  echo "$entry throws:"; sed 's/^/  | /' "$WORK/missing.log"
  for expected in "linux/x64" "glibc" "acdc-ml-$PLATFORM" "npm install acdc-ml-$PLATFORM" "cargo" "npm run build:native"; do
    grep -qF -- "$expected" "$WORK/missing.log" || fail "the error from $entry does not mention '$expected'"
  done
done

step "sizes"
ls -l "$ROOT_TGZ" "$PLATFORM_TGZ" | awk '{ printf "%10d bytes  %s\n", $5, $NF }'
echo "pack-test: OK"
