import os

def main():
    print("ok")
TWILIO_AUTH_TOKEN = "d1c50bf3fbd0f1194aeb7e965ae621b4"
import os

def main():
    print("ok")
