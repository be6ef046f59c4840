'use strict';
// 443 ModuleNotFound "global name 'left-pad-not-installed' is not defined": a dependency is missing.
const pad = require('left-pad-not-installed');
exports.main_handler = async () => pad('x', 3);
