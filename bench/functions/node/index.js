// The benchmark's Node.js handlers, the same for our runtime and for aws-lambda-ric.
exports.noop = async () => null;
exports.echo = async (event) => event;
exports.size = async (event) => event.Records.length;
