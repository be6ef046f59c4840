'use strict';
// Loading this file requires a package that does not exist: 443 ModuleNotFound.
require('conformance_no_such_dependency');

exports.error_dependency_missing = async () => 'unreachable';
