// The subject scheme of natsbridge (github.com/adws/eventbus/natsbridge),
// for producers and consumers written in JavaScript. An event goes to
//
//   <prefix>.<escaped event_type>.<escaped adw_id>
//
// so that subscribers can filter on the server with "*" and ">", as
// "adws.events.step_failed.*" or "adws.events.*.adw-7". The escaping is
// natsbridge.EscapeToken: every byte (in UTF-8) of ".", "*", ">", "%", an
// ASCII control character or space, DEL, or a Unicode space becomes %XX
// (upper-case hex); other text stays as it is. An empty value is "_", and
// the value "_" is "%5F". The mapping is a bijection, and the Go side
// refuses any other spelling of a subject token.

// DEFAULT_PREFIX is natsbridge.DefaultSubjectPrefix.
export const DEFAULT_PREFIX = "adws.events";

// The characters outside ASCII that Go's unicode.IsSpace reports: the
// Unicode White_Space property. (JavaScript's \s also matches U+FEFF,
// which Go keeps as it is.)
const unicodeSpace = /^[\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;

const utf8 = new TextEncoder();

function mustEscape(ch) {
  const cp = ch.codePointAt(0);
  return cp <= 0x20 || cp === 0x7f || ch === "." || ch === "*" || ch === ">" || ch === "%" ||
    unicodeSpace.test(ch);
}

// escapeToken returns s as one subject token, as natsbridge.EscapeToken does.
export function escapeToken(s) {
  if (s === "") return "_";
  if (s === "_") return "%5F";
  let out = "";
  for (const ch of s) { // code points, not UTF-16 units
    if (!mustEscape(ch)) {
      out += ch;
      continue;
    }
    for (const byte of utf8.encode(ch)) {
      out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
    }
  }
  return out;
}

// subjectFor returns the subject of an event in the wire format (an object
// with event_type and adw_id), as natsbridge.Subject does.
export function subjectFor(event, prefix = DEFAULT_PREFIX) {
  return `${prefix}.${escapeToken(event.event_type)}.${escapeToken(event.adw_id ?? "")}`;
}
