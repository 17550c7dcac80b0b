// Preloaded with `node --import ./loopback-only.mjs` so that a server which would listen on every interface
// (Portkey's gateway calls server.listen(port)) listens on 127.0.0.1 only. Pipes and explicit options keep
// their meaning; only the host is forced.
import net from 'node:net';

const loopback = '127.0.0.1';
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first, ...rest] = args;
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen(options[, callback]); a pipe (path) or an inherited handle is left alone.
    if (first.path === undefined && first.handle === undefined && first.fd === undefined) {
      return listen.call(this, { ...first, host: loopback }, ...rest);
    }
    return listen.apply(this, args);
  }
  if (args.length === 0 || typeof first === 'function') {
    // listen() / listen(callback): an ephemeral port.
    return listen.call(this, 0, loopback, ...args);
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback]): drop whatever host was given (or undefined) and use loopback.
    if (rest.length > 0 && (typeof rest[0] === 'string' || rest[0] === undefined || rest[0] === null)) {
      rest.shift();
    }
    return listen.call(this, first, loopback, ...rest);
  }
  return listen.apply(this, args);
};
