# settings
'mailgun_key' => 'key-d62285053134750ef661e914e64323b2',
# settings
