// A module resolve hook registered by bin/dromedary.mjs. When a route file imports `dromedary` (or
// `dromedary/testing`) and normal resolution finds no such package, which happens for route files
// outside any project that installed it, resolve to the copy of dromedary that is running.
let targets = {};

export async function initialize(data) {
  targets = data.targets;
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    const target = targets[specifier];
    if (target && err && err.code === 'ERR_MODULE_NOT_FOUND') return { url: target, shortCircuit: true };
    throw err;
  }
}
