// Place a click-to-call through eslengine's API and follow it to its end.
//
//   ESLENGINE_URL=http://127.0.0.1:8080 ESLENGINE_KEY=... node place_call.mjs +12025550123 user/1000
//
// Node 18 or newer (global fetch); nothing to install.

const base = process.env.ESLENGINE_URL ?? "http://127.0.0.1:8080";
const key = process.env.ESLENGINE_KEY;
const [a, b] = process.argv.slice(2);
if (!key || !a || !b) {
  console.error("usage: ESLENGINE_KEY=... node place_call.mjs <first party> <second party>");
  process.exit(2);
}
const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };

// A retried POST with the same Idempotency-Key places the call only once.
const placed = await fetch(`${base}/v1/calls`, {
  method: "POST",
  headers: { ...headers, "Idempotency-Key": `node-example-${a}-${b}-${Date.now()}` },
  body: JSON.stringify({ a, b, variables: { source: "node-example" } }),
});
const accepted = await placed.json();
if (placed.status !== 202) {
  // 4xx: {"error": ..., "field": ..., "reason": ...}
  console.error(`refused (${placed.status}): ${accepted.field ?? ""} ${accepted.reason}`);
  process.exit(1);
}
console.log(`queued ${accepted.id}: dialing ${accepted.a.join(", ")} then ${accepted.b.join(", ")}`);

// Poll the call until it is final (webhooks avoid polling).
const final = new Set(["completed", "failed", "cancelled"]);
let call;
for (;;) {
  const response = await fetch(`${base}/v1/calls/${accepted.id}`, { headers });
  call = await response.json();
  if (final.has(call.status)) break;
  await new Promise((resolve) => setTimeout(resolve, 500));
}
console.log(`${call.status} ${call.hangup_cause ?? ""}`.trim());
