// Reference implementations, for OPA's JavaScript SDK, of the builtins Prewarm implements
// that the SDK itself lacks (it ships json.is_valid, regex.split, sprintf and yaml.* only).
// Written independently of Prewarm's C from OPA's documented semantics (Go's net/url,
// encoding/hex, regexp, time; OPA's util/semver), on Node's standard library. Like OPA's
// SDKs without strict builtin errors, a builtin that fails returns undefined.
"use strict";

const isStr = (s) => typeof s === "string";

function queryEscape(s) {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function queryUnescape(s) {
  const bytes = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%") {
      if (!/^[0-9a-fA-F]{2}$/.test(s.substr(i + 1, 2))) return undefined;
      bytes.push(parseInt(s.substr(i + 1, 2), 16));
      i += 2;
    } else if (s[i] === "+") {
      bytes.push(32);
    } else {
      for (const b of Buffer.from(s[i], "utf8")) bytes.push(b);
    }
  }
  const text = Buffer.from(bytes).toString("utf8");
  return Buffer.from(text, "utf8").equals(Buffer.from(bytes)) ? text : undefined;
}

function semverParse(v) {
  if (!isStr(v)) return undefined;
  let rest = v;
  let meta = "";
  let pre = "";
  const plus = rest.indexOf("+");
  if (plus >= 0) { meta = rest.slice(plus + 1); rest = rest.slice(0, plus); }
  const dash = rest.indexOf("-");
  if (dash >= 0) { pre = rest.slice(dash + 1); rest = rest.slice(0, dash); }
  const ident = /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/;
  if ((pre && !ident.test(pre)) || (meta && !ident.test(meta))) return undefined;
  const parts = rest.split(".");
  if (parts.length < 3) return undefined;
  const tri = [parts[0], parts[1], parts.slice(2).join(".")];
  if (!tri.every((p) => /^[+-]?[0-9]+$/.test(p))) return undefined;
  return { v: tri.map((p) => BigInt(p)), pre };
}

function cmpPre(a, b) {
  const as = a.split("."), bs = b.split(".");
  for (let i = 0; ; i++) {
    if (i >= as.length) return i >= bs.length ? 0 : -1;
    if (i >= bs.length) return 1;
    const ai = /^[+-]?[0-9]+$/.test(as[i]), bi = /^[+-]?[0-9]+$/.test(bs[i]);
    if (ai && !bi) return -1;
    if (!ai && bi) return 1;
    if (ai && bi && BigInt(as[i]) !== BigInt(bs[i])) return BigInt(as[i]) < BigInt(bs[i]) ? -1 : 1;
    if (as[i] !== bs[i]) return as[i] < bs[i] ? -1 : 1;
  }
}

// Go's regexp syntax is close enough to JavaScript's "u" mode for the test cases; patterns
// RE2 refuses (lookaround, backreferences) are refused here too.
function goRegExp(p) {
  if (/\(\?[=!<]|\\[1-9]|[*+?}]\+/.test(p.replace(/\(\?P?<[A-Za-z_]/g, ""))) return undefined;
  let flags = "gu";
  const m = /^\(\?([imsU]+)\)/.exec(p);
  if (m) {
    if (m[1].includes("i")) flags += "i";
    if (m[1].includes("s")) flags += "s";
    if (m[1].includes("m")) flags += "m";
    p = p.slice(m[0].length);
  }
  try {
    return new RegExp(p.replace(/\(\?P</g, "(?<").replace(/\$$/, "(?![\\s\\S])"), flags);
  } catch (e) {
    return undefined;
  }
}

function findAll(re, s, n) {
  const out = [];
  let prevEnd = -1;
  for (let pos = 0; pos <= s.length && (n < 0 || out.length < n);) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) break;
    const start = m.index, end = start + m[0].length;
    if (end === start) {
      if (start !== prevEnd) out.push(m[0]);
      pos = start < s.length ? start + (s.codePointAt(start) > 0xffff ? 2 : 1) : s.length + 1;
    } else {
      out.push(m[0]);
      pos = end;
    }
    prevEnd = end;
  }
  return out;
}

function civil(ns, zone) {
  const ms = Number(BigInt.asIntN(64, BigInt(ns)) / 1000000n) - (BigInt(ns) % 1000000n < 0n ? 1 : 0);
  const opts = { timeZone: zone === "" || zone === "UTC" ? "UTC" : zone, year: "numeric", month: "numeric", day: "numeric" };
  try {
    const parts = new Intl.DateTimeFormat("en-US", opts).formatToParts(new Date(ms));
    const get = (t) => Number(parts.find((p) => p.type === t).value);
    return [get("year"), get("month"), get("day")];
  } catch (e) {
    return undefined;
  }
}

function jsonPointer(path) {
  if (path === "") return [];
  if (path[0] !== "/") return undefined;
  return path.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function jsonPatch(doc, ops) {
  doc = JSON.parse(JSON.stringify(doc));
  const get = (d, toks) => toks.reduce((o, t) => (o === undefined || o === null ? undefined : o[t]), d);
  for (const op of ops) {
    const toks = jsonPointer(op.path);
    if (!toks) return undefined;
    if (op.op === "test") {
      if (JSON.stringify(get(doc, toks)) !== JSON.stringify(op.value)) return undefined;
      continue;
    }
    let value = op.value;
    if (op.op === "copy" || op.op === "move") {
      const from = jsonPointer(op.from);
      value = JSON.parse(JSON.stringify(get(doc, from)));
      if (op.op === "move") {
        const parent = get(doc, from.slice(0, -1));
        const k = from[from.length - 1];
        if (Array.isArray(parent)) parent.splice(Number(k), 1); else delete parent[k];
      }
    }
    if (toks.length === 0) { doc = value; continue; }
    const parent = get(doc, toks.slice(0, -1));
    const k = toks[toks.length - 1];
    if (parent === undefined || parent === null || typeof parent !== "object") return undefined;
    if (op.op === "remove") {
      if (!(k in parent)) return undefined;
      if (Array.isArray(parent)) parent.splice(Number(k), 1); else delete parent[k];
    } else if (op.op === "replace") {
      if (!(k in parent)) return undefined;
      parent[k] = value;
    } else if (Array.isArray(parent)) {
      parent.splice(k === "-" ? parent.length : Number(k), 0, value);
    } else {
      parent[k] = value;
    }
  }
  return doc;
}

module.exports = {
  "base64url.encode_no_pad": (s) => (isStr(s) ? Buffer.from(s, "utf8").toString("base64url") : undefined),
  "hex.encode": (s) => (isStr(s) ? Buffer.from(s, "utf8").toString("hex") : undefined),
  "hex.decode": (s) => {
    if (!isStr(s) || !/^([0-9a-fA-F]{2})*$/.test(s)) return undefined;
    const b = Buffer.from(s, "hex");
    const t = b.toString("utf8");
    return Buffer.from(t, "utf8").equals(b) ? t : undefined;
  },
  "urlquery.encode": (s) => (isStr(s) ? queryEscape(s) : undefined),
  "urlquery.decode": (s) => (isStr(s) ? queryUnescape(s) : undefined),
  "urlquery.encode_object": (o) => {
    const parts = [];
    for (const k of Object.keys(o).sort()) {
      for (const v of Array.isArray(o[k]) ? o[k] : [o[k]]) parts.push(queryEscape(k) + "=" + queryEscape(v));
    }
    return parts.join("&");
  },
  "urlquery.decode_object": (s) => {
    const out = {};
    for (const seg of s.split("&")) {
      if (seg === "") continue;
      const eq = seg.indexOf("=");
      const k = eq >= 0 ? seg.slice(0, eq) : seg;
      if (k.includes(";")) return undefined;
      const kk = queryUnescape(k), vv = queryUnescape(eq >= 0 ? seg.slice(eq + 1) : "");
      if (kk === undefined || vv === undefined) return undefined;
      (out[kk] = out[kk] || []).push(vv);
    }
    return out;
  },
  "glob.quote_meta": (s) => s.replace(/[*?\\[\]{}]/g, (c) => "\\" + c),
  "json.patch": (doc, ops) => jsonPatch(doc, ops),
  "regex.find_n": (p, s, n) => {
    const re = goRegExp(p);
    return re ? findAll(re, s, n) : undefined;
  },
  "regex.template_match": (t, s, ds, de) => {
    let level = 0, lit = 0, open = 0, pat = "^";
    const quote = (x) => x.replace(/[\\.+*?()|[\]{}^$]/g, (c) => "\\" + c);
    for (let i = 0; i < t.length; i++) {
      if (t[i] === ds) { if (++level === 1) open = i; }
      else if (t[i] === de) {
        if (--level === 0) { pat += quote(t.slice(lit, open)) + "(" + t.slice(open + 1, i) + ")"; lit = i + 1; }
        else if (level < 0) return undefined;
      }
    }
    if (level !== 0) return undefined;
    const re = goRegExp(pat + quote(t.slice(lit)) + "$");
    return re ? (re.lastIndex = 0, re.test(s)) : undefined;
  },
  "semver.is_valid": (v) => semverParse(v) !== undefined,
  "semver.compare": (a, b) => {
    const x = semverParse(a), y = semverParse(b);
    if (!x || !y) return undefined;
    for (let i = 0; i < 3; i++) if (x.v[i] !== y.v[i]) return x.v[i] < y.v[i] ? -1 : 1;
    if (!x.pre && y.pre) return 1;
    if (x.pre && !y.pre) return -1;
    return x.pre ? cmpPre(x.pre, y.pre) : 0;
  },
  "time.parse_rfc3339_ns": (s) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
    if (!m) return undefined;
    const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number);
    const dt = new Date(Date.UTC(y, mo - 1, d, h, mi, sec));
    if (dt.getUTCMonth() !== mo - 1 || dt.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) return undefined;
    let off = 0;
    if (m[8] !== "Z") off = (m[8][0] === "-" ? -1 : 1) * (Number(m[8].slice(1, 3)) * 3600 + Number(m[8].slice(4)) * 60);
    const frac = BigInt((m[7] || "").padEnd(9, "0").slice(0, 9) || "0");
    const ns = (BigInt(Date.UTC(y, mo - 1, d, h, mi, sec) / 1000) - BigInt(off)) * 1000000000n + frac;
    return Number(ns);   // a double: exact only up to 2^53 ns (see the case notes)
  },
  "time.date": (x) => {
    if (Array.isArray(x)) return x.length === 2 && isStr(x[1]) ? civil(x[0], x[1] === "Local" ? undefined : x[1]) : undefined;
    return civil(x, "UTC");
  },
  "time.now_ns": () => Date.now() * 1000000,
  trace: (s) => (isStr(s) ? true : undefined),
};
