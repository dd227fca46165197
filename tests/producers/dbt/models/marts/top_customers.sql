select customer_id, customer_name, revenue
from {{ ref('customer_revenue') }}
where revenue > 10
