import os

def main():
    print("ok")
sg = SendGridAPIClient('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')
import os

def main():
    print("ok")
