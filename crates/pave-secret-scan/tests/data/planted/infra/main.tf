# settings
  secret_key = "oxQPYIydVkWaoZlJjUObi+9QOGY/5x4MRY3WINMV"
# settings
