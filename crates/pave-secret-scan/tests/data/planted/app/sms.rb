def ok
  puts "ok"
end
client = Twilio::REST::Client.new(ENV['SID'], api_key: 'SK2b7120ce02b3fe55033894eec53edf6c')
def ok
  puts "ok"
end
