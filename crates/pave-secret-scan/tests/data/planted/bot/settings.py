import os

def main():
    print("ok")
SLACK_BOT_TOKEN = "xoxb-463716273104-7903014179221-8dOQC4oN1I8MTmUJAr5lXSZ1"
import os

def main():
    print("ok")
