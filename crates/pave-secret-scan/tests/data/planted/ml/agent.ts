export function ok(): string {
  return "ok";
}
const client = new Anthropic({ apiKey: "sk-ant-api03-RgR5ISVYRbEW1qsrT6UCsjePNU64ouTtU7uo5IIMvuATgUf4uomCLy6FR2Zr2N01CE9dBYYp6b4QKiTg4s_wyzU9xgZt1AA" });
export function ok(): string {
  return "ok";
}
