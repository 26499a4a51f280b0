// Validates glTF files with the Khronos glTF validator: prints each file's report summary and
// its messages; exits 1 when any file has errors or warnings.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const validator = createRequire(import.meta.url)("gltf-validator");
let failed = false;
for (const path of process.argv.slice(2)) {
  const report = await validator.validateBytes(new Uint8Array(await readFile(path)));
  const { numErrors, numWarnings, numInfos, messages } = report.issues;
  console.log(`${path}: ${numErrors} errors, ${numWarnings} warnings, ${numInfos} infos (validator ${report.validatorVersion})`);
  for (const m of messages) console.log(`  ${m.code} ${m.pointer ?? ""}: ${m.message}`);
  failed ||= numErrors > 0 || numWarnings > 0;
}
process.exit(failed ? 1 : 0);
