function ok() {
  return "ok";
}
  apiKey: "AIzaaTSH_CqbjrouKy0IIE4-4m53XHpsK7YbKor",
function ok() {
  return "ok";
}
