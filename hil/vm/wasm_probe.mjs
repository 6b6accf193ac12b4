// python -m hil heap, wasm32 part: MicroPython on WebAssembly (npm
// @micropython/micropython-webassembly-pyscript, sys.maxsize = 2**31-1) under Node.
// usage: node wasm_probe.mjs DRIVE_DIR [passes [lcd_address]]   prints heap_probe.py's "HEAP {...}" line and
// "WASM-GC {...}": the heap the VM grew to (its heap grows on demand from a 16 KB start).
import { loadMicroPython } from "./node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const drive = process.argv[2];
const passes = process.argv[3] || "1000";
const lcd = process.argv[4] || "";  // an I2C address that answers (the lcd driver's heap), or none
let out = [];
const mp = await loadMicroPython({
  heapsize: 16 * 1024,
  stdout: (s) => { process.stdout.write(s + "\n"); out.push(s); },
  stderr: (s) => process.stderr.write(s + "\n"),
  linebuffer: true,
});

function copy(src, dst) {
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) {
      try { mp.FS.mkdir(d); } catch (e) { /* exists */ }
      copy(s, d);
    } else if (name.endsWith(".py") || name.endsWith(".mpy")) {
      mp.FS.writeFile(d, fs.readFileSync(s));
    }
  }
}
copy(drive, "");
try { mp.FS.mkdir("/.vmw"); } catch (e) { /* exists */ }
copy(path.join(here, "shims_wasm"), "/.vmw");
mp.FS.writeFile("/.vmw/_vmenv.py",
  `ENV = {"DINAMICS_HIL": "1", "DINAMICS_HEAP_PASSES": "${passes}"${lcd ? `, "DINAMICS_VM_LCD": "${lcd}"` : ""}}\n`);
mp.FS.writeFile("/.vmw/_vmstepwise.py", "# the probe's steps are run call by call\n");
mp.runPython(`import sys\nsys.path[:] = ["/.vmw", "/.vm", "/", "/lib", ".frozen"]\n`);
// DINAMICS_HIL=0 in the environment: the board's CTs on the ADCs instead of the HIL feed
if (process.env.DINAMICS_HIL === "0") {
  mp.FS.writeFile("/.vmw/_vmenv.py", mp.FS.readFile("/.vmw/_vmenv.py", { encoding: "utf8" })
    .replace('"DINAMICS_HIL": "1"', '"DINAMICS_HIL": "0"'));
}
const probe = fs.readFileSync(path.join(here, "heap_probe.py"), "utf8");
try {
  mp.runPython(probe);  // defines step() and finish(); each step runs in its own call
  for (let i = 0; i < 100; i++) {
    mp.runPython("if not step(): print('STEPS-DONE')");
    if (out.includes("STEPS-DONE")) break;
  }
  mp.runPython("finish()");
} catch (e) {
  console.log("WASM-ERROR " + String(e).split("\n").slice(-3).join(" | "));
}
mp.runPython(`
import gc, micropython, json, sys
gc.collect()
micropython.mem_info()
`);
const info = out.filter((l) => l.startsWith("GC: total:"));
if (info.length) {
  const m = /total: (\d+), used: (\d+)/.exec(info[info.length - 1]);
  console.log("WASM-GC " + JSON.stringify({ heap_total: +m[1], used: +m[2] }));
}
