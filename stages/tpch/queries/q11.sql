-- TPC-H Q11: Important Stock Identification. Validation parameters: NATION = GERMANY, FRACTION = 0.0001 / SF.
-- `:fraction` is replaced by 0.0001 / SF (engines.query_text) before the query runs, as the specification
-- scales it (2.1.3.4 of Q11): 0.0001 at SF 1, 0.01 at SF 0.01, 0.00001 at SF 10.
select
    ps_partkey,
    sum(ps_supplycost * ps_availqty) as value
from
    partsupp,
    supplier,
    nation
where
    ps_suppkey = s_suppkey
    and s_nationkey = n_nationkey
    and n_name = 'GERMANY'
group by
    ps_partkey
having
    sum(ps_supplycost * ps_availqty) > (
        select
            sum(ps_supplycost * ps_availqty) * :fraction
        from
            partsupp,
            supplier,
            nation
        where
            ps_suppkey = s_suppkey
            and s_nationkey = n_nationkey
            and n_name = 'GERMANY'
    )
order by
    value desc;
