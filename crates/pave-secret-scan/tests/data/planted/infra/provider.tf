# settings
  access_key = "ASIANHRMDYHAGB7NJPDC"
# settings
