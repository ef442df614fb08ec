import os

def main():
    print("ok")
gl = gitlab.Gitlab(url, private_token="glpat-Ugvhtp8MRPeU358kyfAJ")
import os

def main():
    print("ok")
