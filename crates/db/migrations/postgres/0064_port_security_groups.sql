-- The security groups of a server's ports, by name, as a JSON array: what
-- Nova shows as a server's `security_groups` and changes with its
-- addSecurityGroup / removeSecurityGroup actions. Stratus filters no
-- traffic and knows one group per project, `default`, which every port
-- starts in. Numbered 0064 to leave room for other branches.
ALTER TABLE ports ADD COLUMN security_groups TEXT NOT NULL DEFAULT '["default"]';
