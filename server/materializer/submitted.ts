/**
 * What a device submitted for an entry that did not parse, kept with its verdict so an auditor
 * can see it (issue 16). As received, but bounded and inert: JSON text (so keys such as `$where`
 * or `a.b`, which MongoDB and FerretDB refuse as field names, are stored as text), cut at
 * SUBMITTED_MAX_CHARS, and never an exception (the value comes from a peer and may be hostile).
 */
export const SUBMITTED_MAX_CHARS = 4096;

export function submittedText(raw: unknown, maxChars = SUBMITTED_MAX_CHARS): string {
  let text: string;
  try {
    let seen = 0;
    text =
      JSON.stringify(raw, (_key, value: unknown) => {
        // Stop walking once far past the bound: a hostile value may be huge.
        seen += 1;
        if (seen > maxChars) return undefined;
        if (typeof value === "bigint") return `${value}n`;
        if (value instanceof Uint8Array) return `<${value.length} bytes>`;
        if (typeof value === "number" && !Number.isFinite(value)) return String(value);
        if (typeof value === "function" || typeof value === "symbol") return `<${typeof value}>`;
        return value;
      }) ?? String(raw);
  } catch (err) {
    text = `<unreadable: ${err instanceof Error ? err.message.slice(0, 200) : "error"}>`;
  }
  if (text.length <= maxChars) return text;
  return `${text.slice(0, maxChars)}…(truncated from ${text.length} characters)`;
}
