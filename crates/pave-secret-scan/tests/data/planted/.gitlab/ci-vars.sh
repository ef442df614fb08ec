# settings
export GITLAB_TOKEN="glpat-onUcBpBUvhhQyYl2a8kOTwDxp862dljpb0q0.011d1091q"
# settings
