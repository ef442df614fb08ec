function ok() {
  return "ok";
}
const TELEGRAM_BOT_TOKEN = "8237420456:AAPxK2oRQEbCzA41ltRqFbXOzVeeHnPTUDn";
function ok() {
  return "ok";
}
