'use strict';
// API Gateway integration response helper: the shape SCF's API Gateway trigger expects back
// ({isBase64Encoded, statusCode, headers, body}).

/**
 * @param {unknown} body a string is sent as is, a Buffer base64-encoded, anything else as JSON
 * @param {{statusCode?: number, headers?: Record<string,string>}} [options]
 */
function apiGatewayResponse(body, options = {}) {
  const headers = { ...(options.headers ?? {}) };
  const hasType = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
  let text;
  let isBase64Encoded = false;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    text = Buffer.from(body).toString('base64');
    isBase64Encoded = true;
    if (!hasType) headers['Content-Type'] = 'application/octet-stream';
  } else if (typeof body === 'string') {
    text = body;
    if (!hasType) headers['Content-Type'] = 'text/plain; charset=utf-8';
  } else {
    text = JSON.stringify(body === undefined ? null : body);
    if (!hasType) headers['Content-Type'] = 'application/json';
  }
  return { isBase64Encoded, statusCode: options.statusCode ?? 200, headers, body: text };
}

module.exports = { apiGatewayResponse };
