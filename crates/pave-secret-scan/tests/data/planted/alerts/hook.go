package main

func ok() {}
const webhook = "https://hooks.slack.com/services/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"
package main

func ok() {}
