/* TLSSigAPIv2 in the browser: the key never leaves the page.
 *
 *   usersig = b64variant(zlib(JSON{"TLS.ver","TLS.identifier","TLS.sdkappid","TLS.expire",
 *                                  "TLS.time","TLS.sig"}))
 *   TLS.sig = base64(HMAC-SHA256(key as UTF-8, "TLS.identifier:..\nTLS.sdkappid:..\n
 *                                               TLS.time:..\nTLS.expire:..\n"))
 *
 * zlib here is "stored" blocks (no compression): a valid zlib stream that every verifier
 * inflates. HMAC uses WebCrypto where the page is a secure context (https, localhost) and a
 * small SHA-256 below elsewhere (a console reached over plain http on a LAN address).
 */
"use strict";

(function () {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function sha256(data) {
    const bitLen = data.length * 8;
    const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
    padded.set(data);
    padded[data.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
    view.setUint32(padded.length - 4, bitLen >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let off = 0; off < padded.length; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i]);
    return out;
  }

  function hmacSha256Js(key, message) {
    if (key.length > 64) key = sha256(key);
    const ipad = new Uint8Array(64 + message.length);
    const opad = new Uint8Array(64 + 32);
    for (let i = 0; i < 64; i++) {
      const k = i < key.length ? key[i] : 0;
      ipad[i] = k ^ 0x36;
      opad[i] = k ^ 0x5c;
    }
    ipad.set(message, 64);
    opad.set(sha256(ipad), 64);
    return sha256(opad);
  }

  async function hmacSha256(key, message) {
    if (globalThis.crypto && crypto.subtle) {
      const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      return new Uint8Array(await crypto.subtle.sign("HMAC", k, message));
    }
    return hmacSha256Js(key, message);
  }

  /** A zlib stream of stored (uncompressed) deflate blocks, with its Adler-32 trailer. */
  function zlibStored(data) {
    const blocks = Math.max(1, Math.ceil(data.length / 65535));
    const out = new Uint8Array(2 + blocks * 5 + data.length + 4);
    out[0] = 0x78; out[1] = 0x01; // CMF/FLG: deflate, 32 KiB window, (0x7801 % 31 == 0)
    let o = 2;
    for (let i = 0; i < blocks; i++) {
      const start = i * 65535;
      const len = Math.min(65535, data.length - start);
      out[o++] = i === blocks - 1 ? 1 : 0; // BFINAL, BTYPE=00 (stored)
      out[o++] = len & 0xff; out[o++] = len >>> 8;
      out[o++] = ~len & 0xff; out[o++] = (~len >>> 8) & 0xff;
      out.set(data.subarray(start, start + len), o);
      o += len;
    }
    let a = 1, b = 0;
    for (let i = 0; i < data.length; i++) { a = (a + data[i]) % 65521; b = (b + a) % 65521; }
    out[o++] = b >>> 8; out[o++] = b & 0xff; out[o++] = a >>> 8; out[o++] = a & 0xff;
    return out;
  }

  function base64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  const utf8 = (text) => new TextEncoder().encode(text);

  function signedContent(identifier, sdkappid, time, expire, userbuf) {
    let text = `TLS.identifier:${identifier}\nTLS.sdkappid:${sdkappid}\nTLS.time:${time}\nTLS.expire:${expire}\n`;
    if (userbuf !== null && userbuf !== undefined) text += `TLS.userbuf:${userbuf}\n`;
    return utf8(text);
  }

  /** TLS.sig: base64 of HMAC-SHA256 keyed with the key's UTF-8 bytes. */
  async function computeSig(key, identifier, sdkappid, time, expire, userbuf) {
    return base64(await hmacSha256(utf8(key), signedContent(identifier, sdkappid, time, expire, userbuf)));
  }

  async function genUserSig(sdkappid, key, identifier, expire, now) {
    const time = Math.floor(now);
    const doc = {
      "TLS.ver": "2.0",
      "TLS.identifier": identifier,
      "TLS.sdkappid": Number(sdkappid),
      "TLS.expire": Number(expire),
      "TLS.time": time,
    };
    doc["TLS.sig"] = await computeSig(key, identifier, Number(sdkappid), time, Number(expire));
    return base64(zlibStored(utf8(JSON.stringify(doc)))).replace(/\+/g, "*").replace(/\//g, "-").replace(/=/g, "_");
  }

  window.TimSign = { genUserSig, computeSig, sha256, hmacSha256Js, zlibStored };
})();
