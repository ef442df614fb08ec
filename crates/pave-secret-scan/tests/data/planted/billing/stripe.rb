def ok
  puts "ok"
end
Stripe.api_key = 'sk_live_mdXUQbf804yIVsq9srxuFaRv'
def ok
  puts "ok"
end
