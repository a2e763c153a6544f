-- The retry job's checkpoint per webhook on one GitHub instance: the highest delivery id any run
-- wrote. GMA's rows (no hook, no instance) count as the App's hook on github.com.
SELECT
  COALESCE(NULLIF(hook, ''), 'app') AS hook,
  MAX(SAFE_CAST(delivery_id AS INT64)) AS delivery_id
FROM `${dataset}${checkpoint_table}`
WHERE COALESCE(github_instance_url, '') = @instance
GROUP BY 1
