import os

def main():
    print("ok")
login(token="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")
import os

def main():
    print("ok")
