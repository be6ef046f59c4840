'use strict';
// Handler resolution: parse `module.path.to.fn`, load the module (CommonJS or ES module) from the code
// root, walk the property path, and classify every failure into the core's taxonomy.
//
// Rules (those of the best Node peer, aws-lambda-ric):
// - module = the text before the FIRST dot (it may contain `/`), the rest is a property path
//   (`index.handlers.main`); the core parses it (`..` anywhere, an absolute module path or an empty part is
//   refused, with the same texts as in every language);
// - load order: the extensionless file; `<module>.js` (ES module when the nearest package.json says
//   `"type": "module"`, CommonJS otherwise); `<module>.mjs`; `<module>.cjs`; a directory (its index);
//   finally `require.resolve` from the code root (a handler inside node_modules);
// - `default` exports: a path missing on the module is looked up on its `default` export;
// - an ES module's top-level `await` is awaited here, so it counts as InitFunction.

const fs = require('node:fs');
const path = require('node:path');
const native = require('./native').load();
// `node:url` (ES modules only) and `node:child_process` (a syntax error's location only) are required where
// they are used: loading them up front costs every instance ~2 MB of memory and milliseconds of start-up.
// So is `./errors`, which a handler that loads cleanly does not need: the bootstrap's cold start then loads
// one module less (the first invocation loads it, with `./invocation`).
let errorsModule;
const errors = () => (errorsModule ??= require('./errors'));

/** A core error thrown by the add-on (`{kind, message, stackTrace}` on an Error) as a FunctionError. */
function rethrowClassified(e) {
  if (e && typeof e.kind === 'string') throw new (errors().FunctionError)(e.kind, e.message, e.stackTrace);
  throw e;
}

/**
 * The handler string split as Node resolves it (module before the first dot, then a property path), by the
 * core's one parser; a malformed string throws its `MalformedHandler` FunctionError.
 * @param {string} handler e.g. "index.main_handler", "dir/app.handlers.main"
 * @returns {{module: string, path: string[]}}
 */
function parseHandler(handler) {
  try {
    return native.parseHandler(String(handler ?? ''));
  } catch (e) {
    return rethrowClassified(e);
  }
}

/**
 * Throws the `MalformedHandler` FunctionError when the handler's own file resolves (through symbolic links)
 * outside the code root: the core's one rule.
 * @param {string} handler
 * @param {string} codeRoot
 * @param {string} file
 */
function checkHandlerFile(handler, codeRoot, file) {
  try {
    native.checkHandlerFile(String(handler), String(codeRoot), String(file));
  } catch (e) {
    rethrowClassified(e);
  }
}

// `throwIfNoEntry: false`: a missing file is the usual answer here (the load order tries several names, and
// the walk up to the nearest package.json passes many folders), and an exception per miss costs start-up time.
function isFile(p) {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
}

function isDirectory(p) {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/** Whether `file` (a `.js`) is an ES module: the nearest package.json has `"type": "module"`. */
function isEsmScope(file) {
  let dir = path.dirname(file);
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (isFile(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch {
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

const importFile = (file) => import(require('node:url').pathToFileURL(file).href);

/** Loads `file` with require, falling back to import() for an ES module require refuses. */
async function requireOrImport(file) {
  try {
    return require(file);
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') return importFile(file);
    throw e;
  }
}

/**
 * Finds and loads the handler's module.
 * @returns {Promise<{exports: any, file: string}>}
 */
async function loadModule(codeRoot, moduleName, handler) {
  const file = resolveModuleFile(codeRoot, moduleName);
  // The handler's own file must resolve inside the code root (what it imports may live anywhere).
  checkHandlerFile(handler, codeRoot, file);
  if (file.endsWith('.mjs')) return { exports: await importFile(file), file };
  if (file.endsWith('.cjs')) return { exports: require(file), file };
  if (file.endsWith('.js') && file === `${path.resolve(codeRoot, moduleName)}.js`) {
    return { exports: isEsmScope(file) ? await importFile(file) : require(file), file };
  }
  return { exports: await requireOrImport(file), file };
}

/** The file the handler's module names: itself, with `.js`, `.mjs`, `.cjs`, else Node's resolution. */
function resolveModuleFile(codeRoot, moduleName) {
  const base = path.resolve(codeRoot, moduleName);
  for (const f of [base, `${base}.js`, `${base}.mjs`, `${base}.cjs`]) if (isFile(f)) return f;
  try {
    return isDirectory(base) ? require.resolve(base) : require.resolve(moduleName, { paths: [codeRoot] });
  } catch (e) {
    throw errors().moduleNotFound(moduleName, `Cannot find module '${moduleName}' in ${codeRoot} (tried ${moduleName}, ` +
      `${moduleName}.js, ${moduleName}.mjs, ${moduleName}.cjs and node_modules)`);
  }
}

const PARSE_FRAMES = /\bat (wrapSafe|compileSourceTextModule|ModuleLoader\.moduleStrategy|Module\._extensions\.\.json|new ModuleWrap)\b/;

/** A SyntaxError raised by parsing code (not one thrown at run time, e.g. by JSON.parse). */
function isParseError(err) {
  return !!err && err.name === 'SyntaxError' && typeof err.stack === 'string' && PARSE_FRAMES.test(err.stack);
}

/**
 * Where an ES module's syntax error is: Node 20 leaves the file out of the stack, so ask `node --check`
 * (on the error path only). Returns the header Node prints ("file:///…/index.mjs:3\n<line>\n   ^\n") or ''.
 */
function esmSyntaxLocation(file) {
  if (!file) return '';
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS; // only slows the check down
  delete env.NODE_OPTIONS;
  const r = require('node:child_process').spawnSync(process.execPath, ['--check', file], { env, encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0 || typeof r.stderr !== 'string') return '';
  const at = r.stderr.indexOf('SyntaxError');
  return at > 0 ? r.stderr.slice(0, at) : '';
}

/** Turns a failure to load the module into the core's classification. */
function classifyLoadError(err, codeRoot, file) {
  if (err instanceof errors().FunctionError) return err;
  const stack = errors().traceOf(err);
  if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
    const m = /Cannot find (?:module|package) '([^']+)'/.exec(String(err.message));
    let name = m ? m[1] : String(err.message);
    if (path.isAbsolute(name)) {
      const rel = path.relative(codeRoot, name);
      if (!rel.startsWith('..')) name = rel;
    }
    return errors().moduleNotFound(name, stack);
  }
  if (isParseError(err)) {
    let header = '';
    let where = '';
    const first = stack.split('\n', 1)[0];
    if (/:\d+$/.test(first) && !first.startsWith('SyntaxError')) {
      where = first; // CommonJS: the stack starts with "/path/file.js:LINE"
    } else if (/compileSourceTextModule|ModuleWrap/.test(stack)) {
      header = esmSyntaxLocation(file);
      where = header.split('\n', 1)[0];
    }
    if (where.startsWith('file://')) where = where.slice('file://'.length);
    if (path.isAbsolute(where)) where = path.relative(codeRoot, where);
    const message = `SyntaxError: ${err.message}${where ? ` (${where})` : ''}`;
    return new (errors().FunctionError)('SyntaxError', message, header + stack);
  }
  const message =
    err instanceof Error ? `${err.name}: ${err.message}` : `Uncaught ${require('node:util').inspect(err)}`;
  return new (errors().FunctionError)('InitError', message, stack);
}

function walk(obj, segments) {
  let parent;
  let cur = obj;
  for (const s of segments) {
    if (cur === null || cur === undefined || (typeof cur !== 'object' && typeof cur !== 'function')) return null;
    parent = cur;
    cur = cur[s];
  }
  return cur === undefined ? null : { parent, fn: cur };
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object (${v.constructor?.name ?? 'Object'})`;
  return `a ${typeof v}`;
}

/**
 * Loads and resolves a handler string against a code root. Every failure is a classified FunctionError.
 * @param {string} codeRoot
 * @param {string} handler
 * @returns {Promise<{fn: Function, thisArg: any, file: string}>}
 */
async function loadHandler(codeRoot, handler) {
  const parsed = parseHandler(handler);
  const root = path.resolve(codeRoot);
  let loaded;
  try {
    loaded = await loadModule(root, parsed.module, handler);
  } catch (e) {
    throw classifyLoadError(e, root, candidateFile(root, parsed.module));
  }
  const mod = loaded.exports;
  let found = walk(mod, parsed.path);
  if (!found && mod && mod.default !== undefined && mod.default !== mod) found = walk(mod.default, parsed.path);
  const name = parsed.path.join('.');
  if (!found) throw errors().handlerNotFound(name);
  if (typeof found.fn !== 'function') {
    throw errors().handlerNotCallable(name, parsed.module, describe(found.fn));
  }
  return { fn: found.fn, thisArg: found.parent, file: loaded.file };
}

function candidateFile(root, moduleName) {
  const base = path.resolve(root, moduleName);
  for (const f of [base, `${base}.js`, `${base}.mjs`, `${base}.cjs`]) if (isFile(f)) return f;
  return '';
}

module.exports = { parseHandler, loadHandler, classifyLoadError, isEsmScope };
