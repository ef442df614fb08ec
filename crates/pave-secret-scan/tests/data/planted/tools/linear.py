import os

def main():
    print("ok")
LINEAR_API_KEY = "lin_api_S8oaNgbIxxFRmvZSYqtIXbPT04AfkthiAPCrYILv"
import os

def main():
    print("ok")
