// bench/enforce/v8compile.js: seconds V8 takes in `new WebAssembly.Module(bytes)` for one
// module, measured in-process with performance.now() around the constructor only (node's
// start-up and the file read are not counted). Run one module per node process: V8 dedups
// identical modules within an isolate, so a second compile in the same process is not one.
// Pick the tier with V8 flags on the node command line (see peers.sh).
// usage: node [V8 flags] v8compile.js MODULE.wasm   -> prints the seconds on stdout
'use strict';
const fs = require('fs');
const { performance } = require('perf_hooks');
const bytes = fs.readFileSync(process.argv[2]);
let t0, t1;
try {
	t0 = performance.now();
	new WebAssembly.Module(bytes);
	t1 = performance.now();
} catch (e) {
	console.error(`V8 refused: ${String(e.message || e).split('\n')[0]}`);
	process.exit(2);
}
console.log(((t1 - t0) / 1000).toFixed(6));
