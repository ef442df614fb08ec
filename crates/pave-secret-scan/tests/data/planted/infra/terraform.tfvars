# settings
aws_secret_access_key = "rxxBF8P85ejA/yl+8BgDx6iz6GB/DtQEHTDLbFs9"
# settings
