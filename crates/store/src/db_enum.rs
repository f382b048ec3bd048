//! [`Db`]: stores any of the core's closed enums ([`StringEnum`]) in a string column, so entities carry the
//! enum itself and no code above this crate compares stored strings.

use std::sync::Arc;

use crm_core::StringEnum;
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, StringLen, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};

/// A core enum as a column value: written as its string, read back by parsing it (an unknown string is a
/// database error, never a silent default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Db<T>(pub T);

impl<T: StringEnum> From<Db<T>> for Value {
    fn from(value: Db<T>) -> Self {
        Value::String(Some(value.0.as_str().to_owned()))
    }
}

impl<T: StringEnum> TryGetable for Db<T> {
    fn try_get_by<I: ColIdx>(result: &QueryResult, index: I) -> Result<Self, TryGetError> {
        let text = String::try_get_by(result, index)?;
        T::parse(&text).map(Db).map_err(|error| {
            TryGetError::DbErr(DbErr::TryIntoErr {
                from: "String",
                into: std::any::type_name::<T>(),
                source: Arc::new(error),
            })
        })
    }
}

impl<T: StringEnum> ValueType for Db<T> {
    fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
        let text = <String as ValueType>::try_from(value)?;
        T::parse(&text).map(Db).map_err(|_| ValueTypeErr)
    }

    fn type_name() -> String {
        std::any::type_name::<T>().to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::String
    }

    fn column_type() -> ColumnType {
        ColumnType::String(StringLen::N(32))
    }
}

impl<T: StringEnum> Nullable for Db<T> {
    fn null() -> Value {
        Value::String(None)
    }
}

impl<T: StringEnum> sea_orm::IntoActiveValue<Db<T>> for Db<T> {
    fn into_active_value(self) -> sea_orm::ActiveValue<Db<T>> {
        sea_orm::ActiveValue::Set(self)
    }
}

#[cfg(test)]
mod tests {
    use crm_core::account::AccountType;

    use super::*;

    #[test]
    fn enums_travel_as_their_strings() {
        let value: Value = Db(AccountType::Personal).into();
        assert_eq!(value, Value::String(Some("personal".into())));
        assert_eq!(
            <Db<AccountType> as ValueType>::try_from(value).ok(),
            Some(Db(AccountType::Personal))
        );
        assert!(<Db<AccountType> as ValueType>::try_from(Value::String(Some("robot".into()))).is_err());
    }
}
