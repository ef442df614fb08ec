# settings
export GH_TOKEN=ghp_pBmsAoVozaJP1byvWL5KcuQMaey44D0GwIiW
# settings
