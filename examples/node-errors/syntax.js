'use strict';
// 443 SyntaxError: this file does not parse.
exports.main_handler = async () => {
  return 1 +;
};
