'use strict';
// This file does not parse: 443 SyntaxError.
exports.error_syntax = async () => {
  return 'unreachable';;
};
const = 1;
