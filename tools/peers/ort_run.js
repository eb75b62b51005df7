// ONNX Runtime (onnxruntime-node, CPU) half of tools/peers/peer_onnx.py.
//
// usage: node ort_run.js JOB.json
// JOB: {"model": "gen.onnx", "runs": [{"threads": T, "batch": B,
//        "inputs": {name: {"file": "x.bin", "dtype": "int64"|"float32", "shape": [...]}},
//        "expected": {"file": "y.bin", "shape": [...]}, "tolerance": 1e-4,
//        "min_time": s, "min_iters": n, "max_time": s, "reps": r}]}
// For each run: one session with intraOpNumThreads = T (interOp 1, sequential,
// all graph optimisations), one untimed run whose output must match
// `expected` (PyTorch's) within the tolerance (exit 1 otherwise, before any
// timing), then `reps` repetitions of timed runs: each until min_time and
// min_iters are both reached, or max_time (after at least one run).
// Prints one JSON object on stdout: {"version", "runs": [{"threads", "batch", "max_abs_diff",
// "latencies_s": [[...], ...]}]}.
'use strict';

const fs = require('fs');
const path = require('path');

const ORT_DIR = path.join(__dirname, 'node_modules', 'onnxruntime-node');

function fail(msg) {
  process.stderr.write('ort_run: ' + msg + '\n');
  process.exit(1);
}

function loadTensor(ort, spec, dir) {
  const buf = fs.readFileSync(path.resolve(dir, spec.file));
  const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const data = spec.dtype === 'int64' ? new BigInt64Array(bytes) : new Float32Array(bytes);
  return new ort.Tensor(spec.dtype, data, spec.shape);
}

async function runOne(ort, modelPath, run, dir) {
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: run.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = {};
  for (const [name, spec] of Object.entries(run.inputs)) feeds[name] = loadTensor(ort, spec, dir);
  const outName = session.outputNames[0];
  const first = await session.run(feeds);
  const got = first[outName].data;
  const want = loadTensor(ort, Object.assign({dtype: 'float32'}, run.expected), dir).data;
  if (got.length !== want.length) fail(`output has ${got.length} values, expected ${want.length}`);
  let maxDiff = 0;
  for (let i = 0; i < got.length; i++) {
    const diff = Math.abs(got[i] - want[i]);
    if (!(diff <= maxDiff)) maxDiff = Number.isNaN(diff) ? Infinity : diff;
  }
  if (!(maxDiff <= run.tolerance)) {
    fail(`B=${run.batch} threads=${run.threads}: output differs from PyTorch by ${maxDiff} ` +
         `(> ${run.tolerance}); not timing a wrong model`);
  }
  const latencies = [];
  for (let r = 0; r < run.reps; r++) {
    const lat = [];
    const start = process.hrtime.bigint();
    for (;;) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e9);
      const spent = Number(process.hrtime.bigint() - start) / 1e9;
      if (spent >= run.max_time || (lat.length >= run.min_iters && spent >= run.min_time)) break;
    }
    latencies.push(lat);
  }
  if (session.release) await session.release();
  return {threads: run.threads, batch: run.batch, max_abs_diff: maxDiff, latencies_s: latencies};
}

async function main() {
  if (process.argv.length !== 3) fail('usage: node ort_run.js JOB.json');
  let ort;
  try {
    ort = require(ORT_DIR);
  } catch (e) {
    fail(`cannot load onnxruntime-node from ${ORT_DIR} (npm install in tools/peers): ${e.message}`);
  }
  const jobPath = process.argv[2];
  const job = JSON.parse(fs.readFileSync(jobPath, 'utf8'));
  const dir = path.dirname(path.resolve(jobPath));
  const modelPath = path.resolve(dir, job.model);
  const out = {version: require(path.join(ORT_DIR, 'package.json')).version, runs: []};
  for (const run of job.runs) out.runs.push(await runOne(ort, modelPath, run, dir));
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
