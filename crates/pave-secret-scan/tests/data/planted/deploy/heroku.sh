# settings
HEROKU_API_KEY=459c3396-01bb-15e7-541e-ff583930a879
# settings
