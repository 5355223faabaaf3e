// HS256 JWTs for the binary's /chat namespace, signed here as a token issuer would.
import crypto from "node:crypto";

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");

export function jwt(claims, secret) {
  const head = b64url({ alg: "HS256", typ: "JWT" });
  const body = b64url(claims);
  const sig = crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

export const now = () => Math.floor(Date.now() / 1000);
