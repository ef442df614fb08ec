//! Flag sets and contexts shared by the benchmark: the same JSON feeds both engines.

/// One flag: flexibleRollout at 50 % behind four constraints of different operators.
pub fn rollout_with_constraints() -> serde_json::Value {
    serde_json::json!({
        "version": 2,
        "features": [{
            "name": "checkout.new-flow",
            "enabled": true,
            "strategies": [{
                "name": "flexibleRollout",
                "parameters": {"rollout": "50", "stickiness": "default", "groupId": "checkout.new-flow"},
                "constraints": [
                    {"contextName": "environment", "operator": "IN", "values": ["production", "staging"]},
                    {"contextName": "appName", "operator": "STR_STARTS_WITH", "values": ["web", "mobile"]},
                    {"contextName": "tier", "operator": "NUM_GTE", "value": "3"},
                    {"contextName": "version", "operator": "SEMVER_GTE", "value": "2.0.0"}
                ]
            }]
        }]
    })
}

/// Twenty flags of the kinds a real service carries: plain on/off, user lists, rollouts with
/// constraints, segments, variants with payloads, a dependent flag.
pub fn twenty_flags() -> serde_json::Value {
    let mut features = Vec::new();
    for i in 0..20 {
        let name = format!("flag-{i:02}");
        let feature = match i % 5 {
            0 => serde_json::json!({"name": name, "enabled": i % 2 == 0, "strategies": [{"name": "default"}]}),
            1 => serde_json::json!({"name": name, "enabled": true, "strategies": [
                {"name": "userWithId", "parameters": {"userIds": "u-1,u-2,u-3,user-42,u-5"}}]}),
            2 => serde_json::json!({"name": name, "enabled": true, "strategies": [{
                "name": "flexibleRollout",
                "parameters": {"rollout": "30", "stickiness": "userId", "groupId": name},
                "constraints": [
                    {"contextName": "environment", "operator": "IN", "values": ["production"]},
                    {"contextName": "country", "operator": "IN", "values": ["NO", "SE", "DK", "FI"]}
                ],
                "segments": [1]
            }]}),
            3 => serde_json::json!({"name": name, "enabled": true,
            "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "default", "groupId": name}}],
            "variants": [
                {"name": "red", "weight": 500, "stickiness": "default", "payload": {"type": "string", "value": "#f00"}},
                {"name": "blue", "weight": 300, "stickiness": "default", "payload": {"type": "json", "value": "{\"hue\":240}"}},
                {"name": "green", "weight": 200, "stickiness": "default"}
            ]}),
            _ => serde_json::json!({"name": name, "enabled": true,
                "strategies": [{"name": "default", "constraints": [
                    {"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"], "caseInsensitive": true}]}],
                "dependencies": [{"feature": "flag-00"}]}),
        };
        features.push(feature);
    }
    serde_json::json!({
        "version": 2,
        "features": features,
        "segments": [{"id": 1, "name": "beta", "constraints": [
            {"contextName": "appName", "operator": "STR_STARTS_WITH", "values": ["web"]}]}]
    })
}

/// A production-like context, as JSON both engines read.
pub fn context() -> serde_json::Value {
    serde_json::json!({
        "userId": "user-42",
        "sessionId": "s-9f8e7d",
        "environment": "production",
        "appName": "web-shop",
        "remoteAddress": "10.1.2.3",
        "properties": {"tier": "4", "version": "2.3.1", "country": "NO", "email": "Ada@Example.com"}
    })
}
