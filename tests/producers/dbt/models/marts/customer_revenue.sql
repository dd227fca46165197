-- Fails on purpose when SHOP_BREAK_REVENUE is set (the failed-run test). An environment variable,
-- not a --vars, so dbt's partial parsing survives the switch.
select
    c.customer_id,
    c.customer_name,
    sum(o.amount) as revenue
from {{ ref('stg_customers') }} as c
join {{ ref('stg_orders') }} as o on o.customer_id = c.customer_id
where o.status = 'completed'
{% if env_var('SHOP_BREAK_REVENUE', '') %}
  and cast(c.customer_name as integer) > 0
{% endif %}
group by c.customer_id, c.customer_name
