// Every function in the frontend's JavaScript with its line count, as JSON on stdout, for tests/test_code_size.py
// (#13: no JS function over 150 lines). Parsed with the acorn parser that prettier bundles, so the extents are a
// real parser's: a function's lines run from its first to its last line, nested functions included.
// Usage: node tests/frontend/function_lines.js FILE...   ->   [{"file", "name", "line", "lines"}, ...]
import { readFileSync } from "node:fs";
import { parsers } from "prettier/plugins/acorn";

const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

function keyName(key) {
  if (!key) return null;
  if (key.type === "Identifier" || key.type === "PrivateIdentifier") return key.name;
  if (key.type === "Literal") return String(key.value);
  return null;
}

function memberName(node) {
  if (node.type === "Identifier") return node.name;
  if (node.type === "ThisExpression") return "this";
  if (node.type === "MemberExpression") {
    const property = node.computed ? "[…]" : keyName(node.property);
    return `${memberName(node.object)}.${property}`;
  }
  return "…";
}

// The name a reader would look for: the declaration's, else the variable, property, method or assignment
// target holding the function, else "anonymous" with the call or context it sits in.
function functionName(node, parent) {
  if (node.id) return node.id.name;
  if (!parent) return "anonymous";
  if (parent.type === "VariableDeclarator") return keyName(parent.id) ?? "anonymous";
  if (
    parent.type === "Property" ||
    parent.type === "MethodDefinition" ||
    parent.type === "PropertyDefinition"
  ) {
    return keyName(parent.key) ?? "anonymous";
  }
  if (parent.type === "AssignmentExpression") return memberName(parent.left);
  if (parent.type === "CallExpression" || parent.type === "NewExpression") {
    return `anonymous (argument of ${memberName(parent.callee)})`;
  }
  return "anonymous";
}

function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i += 1) if (text[i] === "\n") starts.push(i + 1);
  return starts;
}

function lineOf(starts, offset) {
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (starts[middle] <= offset) low = middle;
    else high = middle - 1;
  }
  return low + 1;
}

async function functionsOf(file) {
  const text = readFileSync(file, "utf8");
  const ast = await parsers.acorn.parse(text, { filepath: file });
  const starts = lineStarts(text);
  const found = [];
  const visit = (node, parent) => {
    if (FUNCTIONS.has(node.type)) {
      const line = lineOf(starts, node.start);
      const lines = lineOf(starts, node.end - 1) - line + 1;
      found.push({ file, name: functionName(node, parent), line, lines });
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === "comments") continue;
      for (const child of Array.isArray(value) ? value : [value]) {
        if (child && typeof child === "object" && typeof child.type === "string") visit(child, node);
      }
    }
  };
  visit(ast, null);
  return found;
}

const all = [];
for (const file of process.argv.slice(2)) all.push(...(await functionsOf(file)));
process.stdout.write(JSON.stringify(all));
