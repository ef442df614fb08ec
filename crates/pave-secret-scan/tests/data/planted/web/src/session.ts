export function ok(): string {
  return "ok";
}
const session = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI4ODQxIiwibmFtZSI6IkluZXMgTW9yZWF1Iiwicm9sZSI6ImFkbWluIiwiaWF0IjoxNzMzMzAwMDAwfQ.-bTkAwmAVwQcVjVxWb7ZzaLIu_fzkcHyXzCqbig5ED9';
export function ok(): string {
  return "ok";
}
