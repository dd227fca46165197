-- Always fails at run time: a model that only ever failed.
select
    order_id,
    cast(status as integer) as status_code
from {{ ref('stg_orders') }}
